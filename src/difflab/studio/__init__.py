"""difflab studio: a local web app over a trained run (the optional `studio` extra, Gradio).

The core never imports this package. Its modules keep the logic apart from the page so it can be
tested on tiny tensors: `inputs` (fields, canvases, uploads → checked values and tensors), `pictures`
(tensors → grids and files), `jobs` (one job at a time, streaming steps), `runs` (run folders under a
directory and their summaries), `session` (`Studio`: the loaded run and every action, through
`Run`, `Editor` and `difflab.explain`), `handlers` (`Page`: field values → `Studio` → pictures), then
`offline` (Gradio imported with analytics off), `app` (the layout) and `server` (loopback launch).
"""
