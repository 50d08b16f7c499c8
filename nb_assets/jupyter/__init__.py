"""What a person in Jupyter uses on the host: the interactive `%%sql`; never copied into the sandbox."""
