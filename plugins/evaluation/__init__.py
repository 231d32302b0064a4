"""Built-in evaluation plug-ins: metrics computed on the test split after training."""
