"""grader: automated grading of the CustomRNN/CustomLSTM audio lab."""
__version__ = "0.1.0"
