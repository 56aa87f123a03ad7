"""Training: score patches, split them into chunks, overfit models, write the bundle.

Modes
  chunks  STDO: one model per chunk. By default one shared model is first trained on all patches
          (`pretrain` of the step budget), then copied into k models that go on training together
          for the rest: each step draws one batch, every chunk equally likely (so each chunk model
          gets about batch/k patches a step, whatever its chunk's size), and every patch trains the
          model of its chunk. The copies keep the shared model's Adam state and the run keeps one
          learning-rate schedule, so the chunk phase continues the shared training instead of
          restarting it. pretrain=0 trains the chunk models from scratch, as the paper does.
  joint   JSTDO: one model, trained with an MSE loss (the squared error PSNR counts). The shared
          model (`pretrain` of the budget, all patches alike) goes on for the rest on patches drawn half
          uniformly and half in proportion to (squared error under the scorer) ** `focus` (0.5: an MSE
          step's gradient size), each weighted by 1/(N p): importance sampling, so the objective stays
          the clip's mean error while the hard patches, drawn more often, lower the gradient's variance
          (`sampling` lean: no weights, training leans to the hard patches, the earlier recipe).
  single  one model on all patches (the NAS-style baseline).

Budget: `steps` (or `epochs`, passes over the run's training patches) is the total for the run,
whatever the mode; every step trains on `batch` patches, so modes compare at equal compute (a chunk
model gets about batch/k patches a step). The `self` scorer's steps come on top.

Held-out frames (`holdout` N: every Nth training frame) are decoded, scored and labelled like the
others (labels come from the HR; the method is non-blind), so the filter routes them by labels, but
no model, the scorers included, trains on them. Chunks split the training patches by scorer PSNR
(`split`: "error", the default, gives each chunk an equal share of their squared error; "count" makes
equal-sized chunks, as the paper does); held-out patches get the chunk their PSNR falls in. The scorer
(`score`) is by default ("auto") the shared model at the end of pretraining, so the chunks split what
is still hard after it; without a shared model, bicubic.

Routing (k > 1 models): with `labels` "best" (the default) every model runs over every frame once
and each patch's stored label becomes the model that reconstructs it best; "split" keeps its chunk.
The bundle's blind router is fitted on (at most ROUTER_FRAMES of) the training frames.

Long inputs: only `train_frames` frames, evenly spread over the input, are decoded (frames.py picks
them; by default as many as fit `frame_memory`); frames not among them are routed by the blind router.

The modules, in the order a job uses them: job (from a command line to a bundle), settings (every default),
preflight (checks before the work), align (pairing an LR of another size and timing with the HR), frames
(which frames), data (decoded frames and patches), deadline (--time: the time each stage gets), world
(torchrun), scoring and chunks (STDO steps 2 and 3), stages (what trains when), loop (the training loop),
checkpoint (resume, Ctrl-C, OOM), router_fit (the blind router), phases (where the time went), run (the
training itself); generic/ holds the shipped generic start models.
"""
