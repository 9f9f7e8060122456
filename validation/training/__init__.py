"""Contrastive training of real encoders (SimCLR-style), CPU by default, CUDA when present.

Modules: :mod:`~validation.training.config` (``TrainConfig``, ``TrainResult``),
:mod:`~validation.training.domain` (the one domain interface of the loop; images),
:mod:`~validation.training.domains` (WordNet sentences and molecular graphs; the domain of a
configuration: :mod:`~validation.training.domains.registry`),
:mod:`~validation.training.loop` (``train``: the loop in named steps),
:mod:`~validation.training.monitor` (the implied radius η(τ)),
:mod:`~validation.training.checkpoint` (resume), :mod:`~validation.training.data` (CIFAR-10
npz, digits, Fashion-MNIST as cached uint8 tensors), :mod:`~validation.training.augment`
(batched torch augmentations), :mod:`~validation.training.encoders` (small CNN, CIFAR
ResNet-18, MLP, projection head), :mod:`~validation.training.evaluate` (kNN monitor, linear
probe) and :mod:`~validation.training.distributed` (rank helpers, differentiable gather).
Importing this package imports nothing heavy; import the modules themselves. See
``docs/training.md``.
"""
