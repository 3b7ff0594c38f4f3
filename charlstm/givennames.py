"""Real given names from many languages, in ASCII spelling: a test set that no training story holds.

The open world's fresh names (openworld.fresh_name) are drawn from syllables and letters, so one of them
could happen to be a real name; every name here is refused by that generator, so a cloze set built from
this list (`charlstm corpus rooms --open --names real`) holds only names the model never read. The list
covers every initial A-Z and lengths 2 to 11, with doubled letters (Anna, Matteo), clusters (Siobhan,
Xochitl) and names far from English spelling (Oluwaseun, Nguyen, Tsegaye).
"""

GIVEN_NAMES = tuple(sorted(set("""
Aaliyah Abebe Abdul Ada Adaeze Adam Adebayo Adele Adriana Agnieszka Ahmed Aiko Aisha Akira Alejandro Aleksander
Alessia Alexei Alice Alina Amara Amir Ana Anders Andrea Aneta Angus Anja Anna Anouk Antoine Aoife Arjun Astrid
Ayasha Ayumi Aziz Bartosz Beatriz Bela Benedikt Benjamin Bianca Bjorn Blessing Bob Bogdan Boris Brigid Bruno
Camille Carlos Catalina Cem Chiara Chidi Chloe Chukwuemeka Ciaran Clara Cosmin Cristina Dagny Dalia Damian
Daniel Daria Dario Dawit Deepak Delphine Dmitri Dolores Dominika Duc Dylan Eamon Ebony Edgar Efua Eilidh Ekaterina
Elif Elin Eliska Emeka Emil Enzo Erik Esra Esther Eun Eva Ewa Ezra Fabian Fanny Farah Fatima Federico Femi Fiona
Florin Folasade Franziska Freya Fumiko Gabriel Gaspard Gemma Giorgos Giovanni Gizem Goran Greta Guadalupe
Guillermo Gunnar Gustavo Habib Hafsa Haruki Hamza Hannah Hans Harriet Hassan Heidi Helga Hiroshi Hoang Hugo Huong
Ibrahim Ida Ifeoma Ignacio Ilse Imani Inga Ingrid Ioana Irina Isabel Isak Ishaan Ivan Ivana Izabela Jack Jakub
Jamal Jana Janek Javier Jelena Jens Jiho Jin Joaquin Johan Jonas Jorge Josefina Jovana Juan Julia Jun Jurgen
Kaito Kalani Kamala Kamil Karim Karolina Kasia Katarzyna Kavya Keanu Kenji Kerstin Khalid Kiran Kofi Kwame Kyung
Lachlan Lakshmi Lars Laszlo Laura Leila Lena Leon Liam Lina Linnea Lorenzo Luca Lucia Ludmila Luis Lukas Lwazi
Magnus Mahmoud Maja Malak Malika Manon Marco Marek Margit Maria Marisol Mateus Matteo Mehmet Mei Mia Miguel
Mihai Mikko Milan Milena Minh Miriam Moana Mohammed Moritz Muhammad Nadia Naledi Naoko Natalia Nia Niamh Nikhil
Nikolai Nils Nina Noa Noor Nuno Nguyen Obinna Odette Ofelia Oisin Ola Oleksandr Olga Oliver Oluwaseun Omar
Oona Orla Oscar Otto Ozge Pablo Paolo Paulina Pedro Pekka Petra Pierre Pilar Piotr Pooja Priya Quentin Quinn
Quirin Quyen Rafael Rahul Rania Raul Rashid Rasmus Reza Rhys Rin Rodrigo Rohan Roisin Rosa Rufus Ruth Ryota
Saanvi Sakura Salma Samir Sander Santiago Sara Sasha Saoirse Sebastian Selin Seo Sergei Shira Shreya Sigrid
Sina Siobhan Siddharth Sofia Soren Stefan Sunita Susanna Svetlana Tadeusz Taini Takeshi Tamar Tanvir Tariq
Tatiana Teodor Thabo Thandiwe Theo Thi Tomas Tove Tsegaye Tuan Tupac Ugne Uma Umar Ulrich Una Unai Urszula
Uriel Usha Uzma Vaclav Valentina Valeria Vanja Vasco Veronika Vesna Viktor Vilja Vincenzo Viola Vivek Wanjiru
Wei Wendell Wiebke Wilhelmina Wiktoria Willem Wojciech Xander Xavier Xenia Ximena Xiomara Xiu Xochitl Xuan
Yael Yaretzi Yasmin Yerlan Yetunde Yiannis Yohannes Yosef Yuki Yulia Yuna Yusuf Yvonne Zainab Zanele Zara
Zbigniew Zeynep Zhang Zhou Ziggy Zofia Zoltan Zora Zsofia Zuzana
""".split())))
