"""Task packets: the schema and its strict loader, the gates, and the packet self-check."""
