"""Screenshot every URL of a file: ``python dispatcher.py urls.txt --out run1/``.

A thin shim over the package's command line, :mod:`screenshots.batch.dispatcher` (also installed
as the ``screenshots`` console script); ``python dispatcher.py --help`` lists the options.
"""

from screenshots.batch.dispatcher import main

if __name__ == "__main__":
    main()
