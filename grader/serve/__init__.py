"""`grader serve OUT`: a local page over a graded class's store, for a TA to look at and (with --allow-edit)
to decide on: the class table, a student's report with the override form, similarity pairs side by side,
the exports. docs/serve.md; the modules:

- `table.py`: the class table as data (one row per student), its filters and sort, and the URL that keeps them;
- `pairs.py`: a flagged similarity pair's two classes side by side, the matching lines marked;
- `classdata.py`: what the pages read from the store, read once per change of the store;
- `guard.py`: who may see and change what (the per-run token, the Host and Origin checks, the loopback address)
  and the headers every answer has;
- `app.py`: requests to answers (routing, pages, forms), with no socket in sight;
- `http.py`: the standard library's threading HTTP server on a loopback address around the app;
- `command.py`: `grader serve` itself: start, print the URL, stop cleanly on Ctrl-C.
"""
