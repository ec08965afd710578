from kernai.cli import main

main()
