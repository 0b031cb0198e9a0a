"""modlib: the helper package of the layer-wise modularity companion.

One module per concept; import the ones you need (importing ``modlib`` itself loads nothing,
seeds nothing and changes no settings):

``paths`` where things live · ``checks`` input validation · ``store`` atomic writes ·
``data`` datasets and sampling · ``models`` architectures, probe points, units ·
``train`` cached training · ``features`` activations at probe points ·
``graphs`` similarity graphs · ``modularity`` Newman's Q and curves ·
``pruning`` modularity-guided layer removal · ``cnt`` weight graphs: node strength, layer
fluctuation · ``population`` populations of small networks binned by accuracy ·
``plots`` figures · ``run`` the papermill driver.
"""
