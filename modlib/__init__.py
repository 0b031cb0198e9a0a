"""modlib: the helper package of the layer-wise modularity companion.

One module per concept; import the ones you need (importing ``modlib`` itself loads nothing,
seeds nothing and changes no settings):

``paths`` where things live · ``checks`` input validation · ``store`` atomic writes ·
``cache`` verified cached artefacts · ``progress`` progress bars · ``data`` datasets, labels and
sampling · ``models`` architectures, probe points, units · ``train`` recipes and cached
training · ``features`` activations at probe points · ``graphs`` cosine similarity and kNN
graphs · ``sparsification`` threshold / top-fraction graphs and similarity histograms ·
``modularity`` Newman's Q, curves and communities · ``pruning`` modularity-guided layer removal ·
``cnt`` weight graphs: node strength, layer fluctuation · ``population`` populations of small
networks binned by accuracy · ``cka`` representation similarity · ``attacks`` adversarial
inputs · ``architecture`` structure-only measures · ``stats`` inference over seeds and verdicts ·
``plots`` figures.

The companion's machinery (the papermill driver, the report, the book and the course) lives in
the subpackage :mod:`modlib.companion`, which imports these modules and is never imported by them.
"""
