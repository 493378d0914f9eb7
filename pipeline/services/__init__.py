"""The two long-running services, the Predictor (scoring loop with hot-swap) and the Trainer,
and what every entry script does around its loop. They wire the core to both adapters.
"""
