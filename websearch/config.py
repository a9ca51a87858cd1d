"""websearch settings: environment variables prefixed ``WEBSEARCH_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings, data_path


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBSEARCH_", env_file=".env", extra="ignore")

    port: int = Field(5080, description="TCP port of the websearch service.")
    database_url: str = Field(
        "postgresql://lingxi@127.0.0.1:55432/lingxi",
        description="PostgreSQL URL (./scripts/run starts a project-local cluster on port 55432).",
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset → embedded Qdrant in qdrant_path.")
    qdrant_api_key: str | None = Field(None, description="API key of the Qdrant server, if it needs one.")
    qdrant_path: str = Field(
        default_factory=lambda: str(data_path("qdrant")),
        description="Directory of the embedded Qdrant (when no qdrant_url); default: $LINGXI_DATA_DIR/qdrant.",
    )
    collection: str = Field("websearch_chunks", description="Qdrant collection holding the chunk vectors.")
    embedding_url: str = Field("http://127.0.0.1:7202", description="Base URL of the lingxi embedding service.")
    embedding_api_key: str | None = Field(None, description="Bearer key of the embedding service, if it has one.")
    embedding_model: str | None = Field(None, description="Embedding model name; unset → the service's default.")
    embedding_batch: int = Field(32, description="Chunks per embedding request.")
    chunk_chars: int = Field(500, description="Target chunk size in characters.")
    chunk_overlap_chars: int = Field(80, description="Characters of overlap between neighbouring chunks.")
    max_html_chars: int = Field(200_000, description="HTML kept per page for /page (the rest is cut).")
    bulk_max_urls: int = Field(50, description="Most URLs one /bulk_ingest call may carry.")
    bulk_concurrency: int = Field(4, description="URLs fetched and ingested at once by /bulk_ingest.")
    max_limit: int = Field(100, description="Largest `limit` a search accepts.")
    hybrid_candidates: int = Field(50, description="Candidates taken from each mode before hybrid fusion.")
    searxng_url: str | None = Field(
        None, description="SearXNG base URL (its JSON format enabled) behind /search/web; unset → /search/web is 503."
    )
    searxng_timeout_s: float = Field(10.0, description="Deadline for one SearXNG query.")
    web_max_results: int = Field(10, description="Largest `limit` of /search/web: pages fetched per web search.")
    web_fetch_deadline_s: float = Field(
        8.0, description="One deadline for fetching all the result pages of a web search; later pages go to `failed`."
    )
    web_fresh_s: float = Field(
        86_400.0, description="A page fetched less than this many seconds ago is reused by web search, not fetched."
    )
