"""Blueprints: thin views over the functions in security/."""
