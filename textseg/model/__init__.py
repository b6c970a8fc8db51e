"""The model: frozen encoders, the trainable decoder, and the one place they are assembled and checked.

    encoders.py    ViT-B/16 patch tokens and the CLIP text tower (pretrained, a local file, or random)
    backbone.py    the refine decoder's ImageNet-pretrained CNN pyramid (EfficientNet-Lite2 by default)
    decoder.py     the seed's cross-attention decoder and the text-conditioned refine decoder
    build.py       build_model(ModelConfig): encoders + decoder, and the identity checkpoints record
    checkpoint.py  saving, loading and checking checkpoints against a model
"""
