from nbharden.cli.app import main

main()
