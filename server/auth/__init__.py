"""Sign-in, sessions and refresh tokens, API tokens, MFA and password reset."""
