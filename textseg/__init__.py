"""textseg: text-prompted segmentation of wall cracks and drywall taping seams."""

__version__ = "0.1.0"

CLASSES: tuple[str, ...] = ("crack", "taping")
"""The two classes, in a fixed order used for class indices everywhere."""

MODEL_SIZE: int = 224
"""Side of the square model input (ViT-B/16 at 224x224 gives 14x14 patch tokens)."""
