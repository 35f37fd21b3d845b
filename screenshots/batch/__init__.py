"""The batch front end: input files, the manifest, the report, the progress bar and the
dispatcher's command line (``python dispatcher.py urls.txt``)."""
