"""Small helpers every layer shares, each written once: time, error text, redaction, the
``${NAME}`` interpolation of operator files, typed values, frequencies, the secret box and the
settings from the environment. Imports nothing else of sync_pipelines."""
