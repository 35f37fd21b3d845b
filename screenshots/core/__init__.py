"""What every layer shares: capture options, URLs, storage keys, errors, settings, a shot and
its result row. Nothing here talks to a browser, a broker or a bucket."""
