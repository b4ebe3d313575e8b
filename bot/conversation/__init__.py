"""Running the dialog engine for citizens: flow revisions, sessions, calls, rendering."""
