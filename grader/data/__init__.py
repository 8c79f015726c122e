"""Datasets in the lab's layout: validation, the synthetic default set, MFCC features.

Modules, one idea each:
  layout    the lab's folder contract, and opening a folder or data.zip safely
  validate  every problem a dataset has, as messages (`grader data check`)
  calls     the synthetic animal calls (pure signal generation)
  synth     the deterministic synthetic dataset written as real WAV files
  features  the lab's MFCC recipe and a content-addressed disk cache
"""
