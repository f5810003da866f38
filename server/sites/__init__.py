"""Sites (campuses), their buildings and rooms: where people, tickets and devices are."""
