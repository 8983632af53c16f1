"""Leaving Python: ONNX export of the networks, the BDT in XGBoost's own format, onnxruntime inference."""
