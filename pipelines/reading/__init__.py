"""Reading a pipeline definition the way SageMaker does: property paths and the Describe* shapes
behind ``Get Steps.<name>.<property>``."""
