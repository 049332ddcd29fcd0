"""The apps layerbench can benchmark, one module each behind one contract (`base.App`):
`python` (layerbench's own stdlib app), `nginx` (the host's nginx, fast and written in C) and
`image` (a user's own local container image). Setups ask the app how to start; `registry` finds
an app by name."""
