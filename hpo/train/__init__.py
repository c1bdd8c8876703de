"""The training core: never imports Optuna or Ray.

- ``models``: the lab's networks from a few architecture knobs;
- ``metrics``: MSE and R², equal to scikit-learn's;
- ``loop``: the lab's train/test loop, a history row per epoch;
- ``checkpoints``: saving and loading a trained model safely;
- ``reporter``: how training talks back to whatever runs it;
- ``objective``: params -> model -> optimizer + schedule -> loop -> test R².
"""
