"""Administration pages: accounts and agencies (never tip content: separation of duties)."""
