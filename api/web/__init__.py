"""The workspace: server-rendered pages for the people who record, print, inspect and administer."""
