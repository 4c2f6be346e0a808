from registerwatch.cli import main

main()
