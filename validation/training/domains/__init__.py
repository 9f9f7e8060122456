"""The paper's sentence and graph domains, each a
:class:`~validation.training.domain.TrainingDomain` (the training loop's one domain interface).

Modules: :mod:`~.base` (the shared data-path resolver), :mod:`~.registry` (the domain of a
training configuration, :func:`~.registry.make_domain`),
:mod:`~.wordnet` (WordNet 3.0 parser and held-out evaluation tasks), :mod:`~.text` (tokenizer,
small transformer, optional MiniLM), :mod:`~.sentences` (the SimCSE sentence domain),
:mod:`~.molecules` (V2000 SDF
parser, graph batches), :mod:`~.graph_augment` (GraphCL augmentations), :mod:`~.gin` (GIN
encoder and the molecule domain) and :mod:`~.protocols` (retrieval recall@k, cross-validated
linear classifier). Importing this package imports nothing heavy; import the modules themselves.
Design notes and measured numbers: ``docs/domains.md``.
"""
