"""Data: what a dataset root holds and how it becomes training examples.

    images.py      reading images and masks (clear errors), atomic writes, JSON
    datasets.py    layouts (images/ + masks/, YOLO, COCO), CLASS=ROOT specs, splits and validation carves, SegDataset
    labels.py      masks from YOLO and COCO labels (`textseg extract-masks`)
    augment.py     training-time zoom and colour jitter, applied alike to image, mask and token grid
    synth.py       the synthetic crack and drywall generator (`textseg synth`)
    duplicates.py  copies and re-shots of one photo, found by content
    audit.py       the dataset audit and its leak-free copy (`textseg audit`)
"""
