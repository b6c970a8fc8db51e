"""The model: frozen encoders, the trainable decoder, and the one place they are composed and checked.

    build.py       TextSegModel (encoders + decoder, one nn.Module) and build_model(ModelConfig)
    minilm.py      the sentence encoder all-MiniLM-L6-v2, the default text tower (offline)
    encoders.py    ViT-B/16 patch tokens and the CLIP text tower (pretrained, a local file, or random)
    backbone.py    the refine decoder's ImageNet-pretrained CNN pyramid (EfficientNet-Lite2 by default)
    decoder.py     the first version's cross-attention decoder ("seed") and the text-conditioned refine decoder
    checkpoint.py  saving, loading and checking checkpoints against a model
"""
