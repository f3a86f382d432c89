"""The run record and what keeps it: durable JSONL, benchmark JSON, JUnit merging."""
