"""Messages across the border: the centre and a partner agency writing about a tip."""
