"""The zoo's model names, importable without torch (:mod:`workloads.zoo` builds the models; a test
keeps the two lists equal). A sweep spec checks its model names against this list, so a resumed
sweep with nothing left to run never imports torch."""

NAMES = ("resnet18", "resnet50", "mobilenet_v2", "vit_small", "bert_base", "gpt2_small", "mlp_digits", "cnn_digits",
         "code_lm")
