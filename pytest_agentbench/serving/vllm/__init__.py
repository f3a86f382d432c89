"""vLLM: the serve spec, its command line, log diagnosis, the process lifecycle, /metrics."""
