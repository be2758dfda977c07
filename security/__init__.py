"""Domain logic: passwords, backup codes, sessions, limits and events. No Flask views here."""
