"""lingxi embedding: embeddings, similarity and rerank."""
