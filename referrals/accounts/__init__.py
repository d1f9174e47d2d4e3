"""People: accounts, roles, teams, passwords, second factors and sessions."""
