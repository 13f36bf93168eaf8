"""The C++ core's Python face: the RDF and its settings, the CV of a model file, the model file."""
