"""Learning the chart: RDF features of data sets, the convolutional autoencoder, its training."""
