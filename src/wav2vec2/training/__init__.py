"""One trainer for pretraining and fine-tuning: tasks plug into the same loop."""
