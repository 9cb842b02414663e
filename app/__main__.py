from app.cli.main import run

if __name__ == "__main__":  # not when a worker process of a local cluster imports it
    run()
