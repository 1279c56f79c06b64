"""Training and evaluation: long-document data, continued masked-LM pretraining, bits per character."""
