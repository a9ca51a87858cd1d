import subprocess

from services.postgres import LocalPostgres


def psql(database: LocalPostgres, sql: str) -> str:
    command = [str(database.bin_dir / "psql"), database.url, "-tAc", sql]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def test_local_cluster_runs_utf8_and_pg_trgm_sees_chinese(local_postgres):
    assert local_postgres.running()
    assert psql(local_postgres, "SHOW server_encoding") == "UTF8"
    assert psql(local_postgres, "SELECT datctype FROM pg_database WHERE datname = current_database()") == "C.UTF-8"
    psql(local_postgres, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
    trigrams = psql(local_postgres, "SELECT array_length(show_trgm('向量数据库'), 1)")
    assert int(trigrams) >= 3  # in a plain C locale CJK characters are not word characters: no trigrams
    assert float(psql(local_postgres, "SELECT similarity('向量数据库', '向量数据')")) > 0.3


def test_start_is_idempotent(local_postgres):
    local_postgres.start()
    assert local_postgres.running()
