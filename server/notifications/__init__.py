"""In-app notifications and their email copies, per each user's preferences."""
