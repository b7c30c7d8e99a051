"""Tables and figures from evaluation outputs (metrics.json, ranks.npz), beside the paper's numbers."""
