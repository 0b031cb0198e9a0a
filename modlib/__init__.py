"""modlib: the helper package of the layer-wise modularity companion.

One module per concept; import the ones you need (importing ``modlib`` itself loads nothing,
seeds nothing and changes no settings):

``paths`` where things live · ``checks`` input validation · ``store`` atomic writes ·
``cache`` verified cached artefacts · ``data`` datasets, labels and sampling ·
``models`` architectures, probe points, units · ``train`` cached training ·
``features`` activations at probe points · ``graphs`` cosine similarity and kNN graphs ·
``sparsification`` threshold / top-fraction graphs and similarity histograms ·
``modularity`` Newman's Q and curves ·
``pruning`` modularity-guided layer removal · ``cnt`` weight graphs: node strength, layer
fluctuation · ``population`` populations of small networks binned by accuracy ·
``cka`` linear CKA between layers' representations · ``attacks`` FGSM and PGD in pixel space ·
``plots`` figures · ``run`` the papermill driver.
"""
