"""Use cases: the business rules, called by handlers and by scheduled work alike."""
