"""Parallel training measured on this machine (chapter 11): processes joined by gloo on localhost.

One idea per module: :mod:`.launch` (start N ranks, collect, clean up), :mod:`.comm`
(all-reduce and send/recv timings), :mod:`.cost_model` (the α–β model and the step times it
predicts), :mod:`.data_parallel` (a step split into compute and all-reduce),
:mod:`.pipeline` (a model cut into stages, GPipe's micro-batch schedule),
:mod:`.stragglers` (injected delays), :mod:`.ddp_check` (Lightning's DDP equals one process
on the global batch), :mod:`.session` (every two-process block in one launch),
:mod:`.analysis` (tidy tables from the ranks' rows) and :mod:`.extrapolate` (the cost model
at the sources' and a modern scale).
"""
