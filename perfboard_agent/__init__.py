"""perfboard-agent: upload benchmark runs from a Mac or CI box, losing none when the server is down."""
