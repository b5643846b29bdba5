"""Identity resolution: which source records (observations) are the same person.

Pure code (polars, rapidfuzz): features and blocking keys, Fellegi–Sunter scoring with
m/u estimated by EM, constrained clustering, stable member ids, golden records.
"""
